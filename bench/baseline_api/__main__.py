"""``python -m bench.baseline_api setup``: create the tables and print a user's API token."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baseline_api.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    if sys.argv[1:] != ["setup"]:
        raise SystemExit("usage: python -m bench.baseline_api setup")
    call_command("migrate", run_syncdb=True, verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    print(Token.objects.get_or_create(user=user)[0].key)


if __name__ == "__main__":
    main()
