"""``python -m apps.manage create_api_token alice [--staff] [--rotate]``: prints alice's new API
token. Only its digest is stored: the token is shown this once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.authtoken.models import Token

from apps.jobs.tokens import issue_token


class Command(BaseCommand):
    help = ("Create the user if needed (no password: token only) and print a new API token; it is "
            "stored as a digest and shown only now.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="staff see every user's jobs")
        parser.add_argument("--rotate", action="store_true",
                            help="replace an existing token (the old one stops working at once)")

    def handle(self, *args: Any, username: str, staff: bool, rotate: bool, **options: Any) -> None:
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
        if staff:
            user.is_staff = True
        user.save()
        if not rotate and Token.objects.filter(user=user).exists():
            raise CommandError(f"{username} already has an API token; it was shown when it was made and "
                               "only its digest is kept. --rotate replaces it (the old one stops working).")
        self.stdout.write(issue_token(user))
