"""``mmon stream [EXAMPLE]``: write an example's staged inference stream (and its labels CSV) to a file;
the example is ``iris`` unless named."""
from __future__ import annotations

import sys

from streams import examples

USAGE = "usage: mmon stream [{%s}] [options]   (default iris; mmon stream EXAMPLE --help for its options)"
DEFAULT = "iris"


def main(argv: list[str]) -> int:
    generators = examples()
    usage = USAGE % ",".join(generators)
    if argv and argv[0] in ("-h", "--help"):
        print(usage + "\n\n" + "\n".join(f"  {name:<10} {module.__doc__.splitlines()[0]}"
                                          for name, module in generators.items()))
        return 0
    if argv and argv[0] in generators:
        return generators[argv[0]].main(argv[1:])
    if argv and not argv[0].startswith("-"):
        print(f"mmon stream: unknown example {argv[0]!r}\n{usage}", file=sys.stderr)
        return 2
    return generators[DEFAULT].main(argv)
