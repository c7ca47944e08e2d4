"""Write the requirements an image installs: requirements.txt without the development-only
packages named in not-in-image.txt, and psycopg2 (built from source against the image's libpq)
in place of psycopg2-binary, at the same version.

    python image_requirements.py requirements.txt not-in-image.txt > image-requirements.txt

Standard library only: it runs in the image's builder stage before anything is installed.
"""
import re
import sys

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def excluded_names(text):
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(canonical(line))
    return names


def image_requirements(requirements, not_in_image):
    """The pins an image installs, in requirements.txt's order."""
    skip = excluded_names(not_in_image)
    pins = []
    for line in requirements.splitlines():
        match = PIN.match(line.strip())
        if not match:
            continue
        name, version = match.groups()
        if canonical(name) == "psycopg2-binary":
            pins.append(f"psycopg2=={version}")
        elif canonical(name) not in skip:
            pins.append(f"{name}=={version}")
    return pins


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    with open(argv[1]) as requirements, open(argv[2]) as not_in_image:
        print("\n".join(image_requirements(requirements.read(), not_in_image.read())))


if __name__ == "__main__":
    main(sys.argv)
