"""`python -m sim.compiled build|status`: compile the request path, or say which modules load compiled."""

from __future__ import annotations

import sys

from sim.compiled import MODULES, build, compiled_dir, stale_modules


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "status"
    folder = compiled_dir()
    if command == "build":
        try:
            build(folder)
        except Exception as exc:  # noqa: BLE001 - no compiler or headers: player-sim runs as Python
            print(
                f"player-sim: compiling the request path failed ({type(exc).__name__}: {exc}); it runs as Python",
                file=sys.stderr,
            )
            return 1
        return 0
    if command == "status":
        stale = set(stale_modules(folder))
        for name in MODULES:
            print(f"{name}: {'Python (no build of this source)' if name in stale else 'compiled'}")
        return 0
    print("usage: python -m sim.compiled build|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
