# Copyright (c) rsitr_mm contributors. All rights reserved.
import os
import os.path as osp
import shutil
import sys
import warnings

from setuptools import find_packages, setup

#: What ships inside the package as ``rsitr_mm/.mim`` (OpenMMLab's mim
#: layout): mmengine resolves ``_base_ = 'rsitr_mm::_base_/...'`` against
#: ``rsitr_mm/.mim/configs``, so other projects use our configs without a
#: clone.
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def add_mim_extension() -> None:
    """Put ``configs``, ``tools`` and ``model-index.yml`` into
    ``rsitr_mm/.mim``: symbolic links for an editable install
    (``pip install -e .``, edits show at once), copies for a wheel or sdist
    build. Other commands leave ``.mim`` alone."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'build',
                                         'install', 'bdist_egg')):
        mode = 'copy'
    else:
        return
    here = osp.dirname(osp.abspath(__file__))
    mim_dir = osp.join(here, 'rsitr_mm', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(here, name)
        dst = osp.join(mim_dir, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            try:
                os.symlink(osp.relpath(src, mim_dir), dst)
                continue
            except OSError:  # e.g. Windows without the privilege
                warnings.warn(f'cannot link {dst}; copying it instead')
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


def point_top_level_at_source(dist_info_dir: str) -> None:
    """Let ``rsitr_mm::`` and ``mim`` find an editable install's ``.mim``.

    mmengine (``Config``'s ``pkg::`` resolution) and mim (``mim search /
    train / test``) locate a package as ``<dist location>/<top_level.txt's
    first line>``. An editable install (PEP 660) keeps its metadata in
    site-packages and the package in the source tree, so that path does
    not exist. The first line becomes the absolute path of the source
    package (``os.path.join`` then returns it unchanged); the module name
    stays on the next line for tools that read every line.
    """
    top_level = osp.join(dist_info_dir, 'top_level.txt')
    source = osp.join(osp.dirname(osp.abspath(__file__)), 'rsitr_mm')
    with open(top_level, 'w', encoding='utf-8') as f:
        f.write(f'{source}\nrsitr_mm\n')


def mim_cmdclass() -> dict:
    """``editable_wheel`` that applies :func:`point_top_level_at_source`."""
    try:
        from setuptools.command.editable_wheel import editable_wheel
    except ImportError:  # setuptools < 64: ``develop`` keeps the source
        return {}       # folder as the distribution's location

    class MimEditableWheel(editable_wheel):

        def _ensure_dist_info(self):
            super()._ensure_dist_info()
            point_top_level_at_source(str(self.dist_info_dir))

    return {'editable_wheel': MimEditableWheel}


def get_version() -> str:
    scope: dict = {}
    with open(osp.join('rsitr_mm', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


add_mim_extension()
setup(
    name='rsitr_mm',
    version=get_version(),
    description='Remote-sensing image-text retrieval (SSJDN, OSDPM) '
    'as an OpenMMLab plug-in',
    long_description=open('README.md', encoding='utf-8').read()
    if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    include_package_data=True,
    package_data={
        'rsitr_mm': ['**/*.txt', '**/*.json', '.mim/**/*', '.mim/*']
    },
    python_requires='>=3.9',
    # Ranges that are tested (docs/get_started.md lists both version sets:
    # requirements.txt's pins and requirements-latest.txt's current
    # releases), so installing into an existing environment keeps its
    # torch/transformers/numpy. rsitr_mm.utils.compat bridges what
    # mmpretrain 1.2.0 expects from transformers 5 and numpy 2.4. Never
    # `mmcv`: mmcv-lite provides the same `mmcv` package without compiled
    # ops. setuptools<81: mmengine 0.10.7 imports pkg_resources.
    install_requires=[
        'torch>=2.0',
        'torchvision',
        'mmengine>=0.10.0,<1.0',
        'mmcv-lite>=2.0.0,<2.4.0',
        'mmpretrain>=1.2.0,<1.3',
        'transformers>=4.28,<6',
        'numpy>=1.26,<3',
        'nltk>=3.8',
        'pillow',
        'setuptools<81',
        # ships the CLIP BPE vocabulary used by the CLIP converter
        'open_clip_torch',
    ],
    extras_require={
        'tests': ['pytest', 'open_clip_torch', 'matplotlib', 'scikit-learn'],
        'vis': ['matplotlib', 'scikit-learn'],
        'serve': ['flask>=3.0'],
    },
    zip_safe=False,
    cmdclass=mim_cmdclass(),
)
