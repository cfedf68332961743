"""Django's command-line utility: ``python -m apps.manage <command>`` from the repository root."""

import os
import sys

EXIT_BAD_SETTINGS = 2  # a REELQUEUE_* variable is wrong: nothing ran


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.reelqueue_api.settings")
    from django.core.management import execute_from_command_line

    from src.config import SettingsError

    try:
        execute_from_command_line(sys.argv)
    except SettingsError as exc:  # raised while the settings load: the message, no traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_SETTINGS)


if __name__ == "__main__":
    main()
