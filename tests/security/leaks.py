"""What the logs of a platform's processes must never hold (DESIGN.md §4: no secret in logs)."""
import re


def secrets_in_logs(platform, secrets):
    """What of `secrets` (and any bearer credential or password hash) the full logs of the platform's
    processes hold: one line per find, naming the process and the secret's first characters."""
    found = []
    for name, proc in platform.procs.items():
        text = proc.log_path.read_text(errors="replace")
        assert text.count("\n") > 10, name  # it did log
        found += [f"{name}: {secret[:6]}… in the log" for secret in secrets if secret in text]
        if re.search(r"Bearer\s+[A-Za-z0-9_\-]{12,}", text) or "$argon2" in text:
            found.append(f"{name}: a bearer credential or a password hash in the log")
    return found
