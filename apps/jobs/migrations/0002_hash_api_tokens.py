"""API tokens stored as digests: every existing token's key is replaced by its digest, in place
(see ``apps.jobs.tokens``). A user keeps working with the token they have."""

import hashlib

from django.db import migrations

DIGEST_CHARS = 40  # frozen copy of apps.jobs.tokens.token_digest: a migration must not change later


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()[:DIGEST_CHARS]


def hash_token_keys(apps, schema_editor):
    tokens = apps.get_model("authtoken", "Token").objects.using(schema_editor.connection.alias)
    for key in list(tokens.values_list("key", flat=True)):
        tokens.filter(key=key).update(key=digest(key))


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0001_initial"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [
        # Backwards: the digests stay (a token cannot be recovered from its digest).
        migrations.RunPython(hash_token_keys, migrations.RunPython.noop, elidable=False),
    ]
