# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Download the wheels a GPU machine image lacks, for its Python.

A GPU machine image brings its own torch, torchvision, transformers and
numpy (and what they depend on), and often has no network. This script runs
on a machine with network and the rsitr_mm environment installed, from the
repository root; it walks the dependency tree of ``setup.py``'s
``install_requires`` in *this* environment, leaves out what the image provides, and downloads the rest as
wheels for the image's Python (``pip download --no-deps --only-binary``):
mmengine, mmcv-lite, mmpretrain, nltk, open_clip_torch and their small
dependencies. Carry the folder to the GPU machine and run
``WHEELS=DIR bash tools/benchmarks/gpu_suite.sh``, which installs only what
is missing from it and keeps the image's own packages.

Example::

    python tools/benchmarks/carry_wheels.py work_dirs/wheels --python 3.12
    # more precise: leave out exactly what the image has
    python tools/benchmarks/carry_wheels.py work_dirs/wheels --python 3.12 \\
        --image-freeze image-freeze.txt      # `pip freeze` on the image
"""
import argparse
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from typing import Dict, Iterable, Optional, Set

#: What the GPU image is expected to bring (with their own dependencies)
#: when no ``--image-freeze`` says exactly.
IMAGE_PROVIDES = ('torch', 'torchvision', 'transformers', 'numpy')
#: Needed beside setup.py's install_requires: the GPU tests' runner.
EXTRA_ROOTS = ('pytest', )
#: What pip's isolated build of ``pip install -e .`` (setup.py, no
#: pyproject.toml) installs first, in an environment of its own that does
#: not see the image's packages; the newest release is carried.
BUILD_REQUIRES = ('setuptools<81', 'wheel', 'packaging')


def canonical(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r'[-_.]+', '-', name).lower()


def closure(roots: Iterable[str], stop: Set[str]) -> Dict[str, str]:
    """``{name: version}`` of the installed distributions that ``roots``
    need (markers evaluated for this interpreter, no extras), not walking
    into the names in ``stop``."""
    from packaging.requirements import Requirement

    found: Dict[str, str] = {}
    todo = [canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in found or name in stop:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(f'{name} is needed but not installed here: '
                             'run this in the rsitr_mm environment')
        found[name] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({'extra': ''}):
                todo.append(canonical(req.name))
    return found


def install_requires(setup_py: str = 'setup.py') -> list:
    """The names in ``setup.py``'s ``install_requires`` (read, not run)."""
    import ast

    from packaging.requirements import Requirement

    with open(setup_py, encoding='utf-8') as f:
        tree = ast.parse(f.read(), setup_py)
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == 'install_requires':
            return [Requirement(r).name for r in ast.literal_eval(node.value)]
    raise SystemExit(f'{setup_py} has no literal install_requires')


def read_freeze(path: str) -> Set[str]:
    """Names in a ``pip freeze`` file (``name==version`` or
    ``name @ url`` lines)."""
    names = set()
    with open(path, encoding='utf-8') as f:
        for line in f:
            match = re.match(r'\s*([A-Za-z0-9][A-Za-z0-9._-]*)', line)
            if match and not line.lstrip().startswith(('#', '-')):
                names.add(canonical(match.group(1)))
    return names


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out_dir', help='folder for the wheels')
    parser.add_argument('--python', default='3.12',
                        help="the image's Python version (default 3.12)")
    parser.add_argument('--platform', nargs='+', default=[
        'manylinux_2_28_x86_64', 'manylinux2014_x86_64',
        'manylinux_2_17_x86_64'], help='wheel platform tags to accept')
    parser.add_argument('--image-freeze', help="`pip freeze` of the image; "
                        'its packages are left out')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the list, download nothing')
    args = parser.parse_args(argv)

    if args.image_freeze:
        image = read_freeze(args.image_freeze)
    else:
        image = set(closure(IMAGE_PROVIDES, stop=set()))
    needed = closure(install_requires() + list(EXTRA_ROOTS), stop=image)
    specs = [f'{name}=={version}' for name, version in sorted(needed.items())]
    specs += [req for req in BUILD_REQUIRES
              if canonical(re.split('[<>=!]', req)[0]) not in needed]
    print(f'{len(specs)} wheels to carry (the image provides '
          f'{len(image)} packages):', ' '.join(specs))
    if args.dry_run or not specs:
        return 0
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps',
           '--only-binary=:all:', '--python-version', args.python,
           '--implementation', 'cp', '-d', args.out_dir]
    for tag in args.platform:
        cmd += ['--platform', tag]
    return subprocess.call(cmd + specs)


if __name__ == '__main__':
    sys.exit(main())
