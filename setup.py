# Copyright (c) rsitr_mm contributors. All rights reserved.
import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    scope: dict = {}
    with open(osp.join('rsitr_mm', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


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
    package_data={'rsitr_mm': ['**/*.txt', '**/*.json']},
    python_requires='>=3.9',
    # Loose ranges; requirements.txt holds the tested pins. Never `mmcv`:
    # mmcv-lite provides the same `mmcv` package without compiled ops.
    install_requires=[
        'torch>=2.0',
        'torchvision',
        'mmengine>=0.10.0,<1.0',
        'mmcv-lite>=2.0.0,<2.4.0',
        'mmpretrain>=1.2.0,<1.3',
        'transformers>=4.28,<4.52',
        'numpy>=1.26,<2.4',
        'nltk>=3.8',
        'pillow',
        # ships the CLIP BPE vocabulary used by the CLIP converter
        'open_clip_torch',
    ],
    extras_require={
        'tests': ['pytest', 'open_clip_torch', 'matplotlib', 'scikit-learn'],
        'vis': ['matplotlib', 'scikit-learn'],
        'serve': ['flask>=3.0'],
    },
    zip_safe=False,
)
