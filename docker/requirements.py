"""Prints the requirements of the project and of the extras named, one a line, read from
pyproject.toml. The images install them in a layer of their own before copying the sources,
so a change to the sources alone rebuilds only the project's own layer.

    python requirements.py api > requirements.txt
"""

import sys
import tomllib


def requirements(pyproject: str, extras: list[str]) -> list[str]:
    with open(pyproject, "rb") as file:
        project = tomllib.load(file)["project"]
    found = list(project["dependencies"])
    for extra in extras:
        found += project["optional-dependencies"][extra]
    return list(dict.fromkeys(found))  # once each, in order


if __name__ == "__main__":
    sys.stdout.write("".join(f"{r}\n" for r in requirements("pyproject.toml", sys.argv[1:])))
