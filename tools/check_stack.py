"""Checks the plugin and its tools under the other NumPy major.

    python tools/check_stack.py [--work-dir DIR] [--cache DIR] \\
        [--packages 'numpy>=2' 'opencv-python-headless>=5']

Installs ``--packages`` (default: the other NumPy major and the OpenCV that
goes with it -- ``numpy>=2`` and ``opencv-python-headless>=5`` beside NumPy
1, ``numpy<2`` and ``opencv-python-headless<4.12`` beside NumPy 2) into a
throwaway folder and puts it first on ``PYTHONPATH``: an *overlay* of this
environment in which those packages shadow the installed ones and
everything else (torch, mmcv, mmengine, mmseg) is shared. Then, in this
environment (*base*) and in the overlay, it

1. imports the checkout's ``mmseg_calsfda`` with mmcv's ops, MMEngine and
   MMSeg, and checks which NumPy and OpenCV each one runs;
2. writes the procedural benchmark (``tools/make_synthetic_data.py``, tiny);
3. trains a tiny stage-2 model for two iterations (``tools/train.py``) and
   checks that its checkpoint pickles numpy objects under that NumPy's
   module (``numpy.core`` for 1, ``numpy._core`` for 2);
4. runs ``tools/estimate_ece.py`` on the generated target images with its
   own checkpoint and with the other environment's;
5. resumes the other environment's checkpoint for one more iteration
   (``tools/train.py --resume``);

and finally compares the two: each checkpoint's estimates in both
environments (at most :data:`ESTIMATE_TOLERANCE` percentage points apart),
and, for information, the generated images and the trained weights.

The downloaded wheels stay in ``--cache`` (default: a folder in the
system's temporary directory), so a second run needs no network. Exit
status: 0 every check passed, 1 a check failed (the message names the
step, its log and the end of what it printed; the work folder is kept),
3 the packages could not be downloaded because the package index is
unreachable (nothing was checked).
"""
import argparse
import csv
import hashlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
LAB = osp.join(ROOT, 'projects', 'calsfda_lab')

#: Exit status when the package index cannot be reached.
EXIT_OFFLINE = 3
#: The overlay's packages by the NumPy major of this environment.
OTHER_STACK = {
    1: ('numpy>=2', 'opencv-python-headless>=5'),
    2: ('numpy<2', 'opencv-python-headless<4.12'),
}
#: How far apart (percentage points) one checkpoint's estimates may be in
#: the two environments.
ESTIMATE_TOLERANCE = 0.01
#: What pip prints when it cannot reach an index (as opposed to an index
#: that has no matching release).
OFFLINE_SIGNS = (
    'NewConnectionError', 'Failed to establish a new connection',
    'Temporary failure in name resolution', 'Name or service not known',
    'Network is unreachable', 'Connection refused', 'ConnectTimeout',
    'ReadTimeout', 'timed out', 'ProxyError', 'SSLError',
    'Could not fetch URL', 'connection broken')
#: The tiny benchmark: 4 source training images, 4 target images.
DATA_ARGS = ('--seed', '0', '--height', '64', '--width', '128',
             '--source-train', '4', '--source-val', '2', '--target-train',
             '4', '--target-val', '2')
#: Printed as JSON by a child process: what an environment runs.
VERSIONS = r'''
import json
import cv2, mmcv, mmcv.ops, mmengine, mmseg, numpy, torch
import mmseg_calsfda
print(json.dumps(dict(
    numpy=numpy.__version__, numpy_file=numpy.__file__,
    opencv=cv2.__version__, opencv_file=cv2.__file__,
    torch=torch.__version__, mmcv=mmcv.__version__,
    mmengine=mmengine.__version__, mmseg=mmseg.__version__,
    plugin=mmseg_calsfda.__file__,
    multiarray=numpy.ndarray.__reduce__(numpy.zeros(1))[0].__module__)))
'''


class CheckFailed(Exception):
    """A check did not pass; the message says which and why."""


class IndexUnreachable(Exception):
    """pip could not reach the package index; nothing was checked."""


def say(message: str) -> None:
    print(f'[stack] {message}', flush=True)


class Environment:
    """This interpreter with extra folders first on ``PYTHONPATH``.

    Args:
        name (str): ``'base'`` or ``'overlay'``.
        work_dir (str): where its runs write.
        prepend (Sequence[str]): folders ahead of the checkout's.
    """

    def __init__(self, name: str, work_dir: str,
                 prepend: Sequence[str] = ()):
        self.name = name
        self.work_dir = osp.join(work_dir, name)
        os.makedirs(self.work_dir, exist_ok=True)
        paths = [*prepend, ROOT, LAB]
        if os.environ.get('PYTHONPATH'):
            paths.append(os.environ['PYTHONPATH'])
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
        self.versions: Dict[str, str] = {}

    def path(self, *parts: str) -> str:
        return osp.join(self.work_dir, *parts)

    def run(self, step: str, args: Sequence[str]) -> str:
        """Runs ``python ARGS`` from the checkout's root; returns its
        stdout, or raises :class:`CheckFailed` naming the step."""
        log = self.path(f'{step}.log')
        res = subprocess.run([sys.executable, *args], cwd=ROOT, env=self.env,
                             capture_output=True, text=True)
        with open(log, 'w') as f:
            f.write(res.stdout + res.stderr)
        if res.returncode != 0:
            tail = '\n'.join((res.stdout + res.stderr).splitlines()[-30:])
            raise CheckFailed(f'{self.name}: {step} exited with '
                              f'{res.returncode} (log {log}):\n{tail}')
        return res.stdout

    def describe(self) -> str:
        v = self.versions
        return (f'NumPy {v["numpy"]}, OpenCV {v["opencv"]}, torch '
                f'{v["torch"]}, mmcv {v["mmcv"]} (ops), mmengine '
                f'{v["mmengine"]}, mmseg {v["mmseg"]}')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', help='where the overlay and the runs '
                        'go (kept); default: a temporary folder, removed '
                        'when every check passed')
    parser.add_argument('--cache', default=osp.join(
        tempfile.gettempdir(), 'mmseg_calsfda_stack_wheels'),
                        help='folder of downloaded wheels (default: '
                        '%(default)s)')
    parser.add_argument('--packages', nargs='+', metavar='REQ',
                        help='requirements installed into the overlay '
                        '(default: the other NumPy major and its OpenCV)')
    return parser.parse_args()


def pip(args: Sequence[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', 'pip', *args, '--disable-pip-version-check'],
        capture_output=True, text=True)


def install_overlay(packages: Sequence[str], cache: str,
                    target: str) -> str:
    """Installs ``packages`` (without dependencies) into ``target`` from
    the wheels in ``cache``, downloading them there first when they are
    not. Returns where they came from."""
    install = ['install', '--no-deps', '--no-index', '--find-links', cache,
               '--target', target, *packages]
    if pip(install).returncode == 0:
        return f'the wheel cache {cache}'
    os.makedirs(cache, exist_ok=True)
    res = pip(['download', '--no-deps', '--dest', cache, '--timeout', '20',
               '--retries', '1', *packages])
    output = res.stdout + res.stderr
    if res.returncode != 0:
        lines = [line for line in output.splitlines()
                 if not line.startswith("WARNING: Location 'file:")]
        tail = '\n'.join(lines[-8:])
        if any(sign in output for sign in OFFLINE_SIGNS):
            raise IndexUnreachable(
                f'could not download {" ".join(packages)}: the package '
                f'index is unreachable:\n{tail}')
        raise CheckFailed(f'pip could not download {" ".join(packages)}:'
                          f'\n{tail}')
    shutil.rmtree(target, ignore_errors=True)
    res = pip(install)
    if res.returncode != 0:
        raise CheckFailed(f'pip could not install {" ".join(packages)} '
                          f'into {target}:\n{res.stderr[-2000:]}')
    return f'the package index (wheels kept in {cache})'


def check_versions(env: Environment, overlay: Optional[str] = None,
                   packages: Sequence[str] = ()) -> None:
    """Reads what ``env`` imports; checks that the plugin is this
    checkout's and, for the overlay, that NumPy and OpenCV are the
    overlay's and match ``packages``."""
    from packaging.requirements import Requirement
    out = env.run('versions', ['-c', VERSIONS])
    env.versions = json.loads(out.strip().splitlines()[-1])
    v = env.versions
    if not v['plugin'].startswith(ROOT + os.sep):
        raise CheckFailed(f'{env.name} imports mmseg_calsfda from '
                          f'{v["plugin"]}, not from the checkout {ROOT}')
    if overlay is None:
        return
    for key in ('numpy_file', 'opencv_file'):
        if not v[key].startswith(overlay + os.sep):
            raise CheckFailed(f'the overlay imports {v[key]}, not the one '
                              f'installed in {overlay}')
    installed = dict(numpy=v['numpy'], opencv=v['opencv'])
    for line in packages:
        req = Requirement(line)
        key = 'opencv' if req.name.startswith('opencv') else req.name
        if key in installed and not req.specifier.contains(
                installed[key], prereleases=True):
            raise CheckFailed(f'the overlay runs {key} {installed[key]}, '
                              f'which {line!r} excludes')


def write_config(data_root: str, path: str) -> None:
    """The tiny stage-2 (value head) config on ``data_root``, from
    scratch (no stage-1 checkpoint)."""
    from mmseg_calsfda.cli import quiet_known_warnings
    from mmseg_calsfda.testing import tiny_config
    quiet_known_warnings()
    cfg = tiny_config('deeplabv2_r101_gta5_value.py', data_root,
                      osp.dirname(path), max_iters=2, interval=2, lr=1e-3)
    cfg.load_from = None
    cfg.dump(path)


def pickled_modules(checkpoint: str) -> set:
    """The numpy multiarray modules a torch checkpoint's pickle names."""
    import zipfile
    names = set()
    with zipfile.ZipFile(checkpoint) as zf:
        for name in zf.namelist():
            if name.endswith('/data.pkl'):
                data = zf.read(name)
                names |= {m for m in ('numpy.core.multiarray',
                                      'numpy._core.multiarray')
                          if m.encode() in data}
    return names


def train(env: Environment, config: str) -> str:
    """Two iterations of ``config`` in ``env``; returns the checkpoint,
    which must pickle numpy objects under ``env``'s NumPy module."""
    work = env.path('train')
    env.run('train', ['tools/train.py', config, '--work-dir', work])
    ckpt = osp.join(work, 'iter_2.pth')
    modules = pickled_modules(ckpt)
    if modules != {env.versions['multiarray']}:
        raise CheckFailed(
            f'{env.name}: {ckpt} pickles numpy objects under '
            f'{sorted(modules) or "no module"}, expected '
            f'{env.versions["multiarray"]} (NumPy {env.versions["numpy"]})')
    return ckpt


def estimate(env: Environment, config: str, ckpt: str, owner: str,
             images: str) -> Dict[str, float]:
    """``tools/estimate_ece.py`` in ``env`` on the checkpoint written by
    ``owner``; returns each image's estimate (percent)."""
    out = env.path(f'est_{owner}.csv')
    env.run(f'estimate_{owner}', [
        'tools/estimate_ece.py', config, ckpt, images, '--warmup-iters', '2',
        '--batch-size', '2', '--out', out
    ])
    with open(out) as f:
        rows = list(csv.DictReader(f))
    bad = [r.get('image') for r in rows if r.get('status') != 'ok']
    if not rows or bad:
        raise CheckFailed(f'{env.name}: {out} has {len(rows)} rows, not '
                          f'estimated: {bad}')
    return {r['image']: float(r['est_ece_percent']) for r in rows}


def resume(env: Environment, config: str, ckpt: str, owner: str) -> None:
    """Resumes ``owner``'s checkpoint in ``env`` for one iteration, as
    ``tools/train.py --resume`` does in a work folder that holds it."""
    work = env.path(f'resume_{owner}')
    os.makedirs(work, exist_ok=True)
    copy = osp.join(work, osp.basename(ckpt))
    shutil.copy(ckpt, copy)
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(copy)
    step = f'resume_{owner}'
    env.run(step, ['tools/train.py', config, '--work-dir', work, '--resume',
                   '--cfg-options', 'train_cfg.max_iters=3'])
    with open(env.path(f'{step}.log')) as f:
        resumed = 'resumed epoch: 0, iter: 2' in f.read()
    if not resumed or not osp.isfile(osp.join(work, 'iter_3.pth')):
        raise CheckFailed(f'{env.name}: --resume did not continue from '
                          f'{owner}\'s iteration 2 to 3 (log '
                          f'{env.path(step + ".log")})')


def tree_digest(root: str) -> Dict[str, str]:
    digests = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                digests[osp.relpath(path, root)] = hashlib.sha256(
                    f.read()).hexdigest()
    return digests


def weight_difference(a: str, b: str) -> float:
    """The largest absolute difference between two checkpoints'
    ``state_dict`` tensors."""
    import torch

    import mmseg_calsfda  # noqa: F401  allow-lists the checkpoint contents
    sa = torch.load(a, map_location='cpu')['state_dict']
    sb = torch.load(b, map_location='cpu')['state_dict']
    if sa.keys() != sb.keys():
        raise CheckFailed(f'{a} and {b} hold different tensors')
    return max((sa[k].double() - sb[k].double()).abs().max().item()
               for k in sa)


def compare(envs: List[Environment], estimates: Dict) -> None:
    """Each checkpoint's estimates in both environments; the generated
    data and trained weights, for information."""
    base, other = envs
    for owner in (base.name, other.name):
        a, b = estimates[base.name, owner], estimates[other.name, owner]
        if a.keys() != b.keys():
            raise CheckFailed(f'{owner}\'s checkpoint was estimated on '
                              f'different images: {sorted(a)} / {sorted(b)}')
        diff = max(abs(a[k] - b[k]) for k in a)
        if diff > ESTIMATE_TOLERANCE:
            raise CheckFailed(
                f'{owner}\'s checkpoint: the estimates differ by up to '
                f'{diff:.4f} percentage points between the environments '
                f'(tolerance {ESTIMATE_TOLERANCE})')
        say(f'{owner}\'s checkpoint: the same estimates in both '
            f'environments (largest difference {diff:.4f} pp, '
            f'{len(a)} images)')
    da, db = (tree_digest(env.path('data')) for env in envs)
    differ = sorted(k for k in da.keys() | db.keys() if da.get(k) != db.get(k))
    say('generated data: ' + ('byte-identical in both environments'
                              if not differ else
                              f'{len(differ)} of {len(da)} files differ'))
    diff = weight_difference(base.path('train', 'iter_2.pth'),
                             other.path('train', 'iter_2.pth'))
    say('trained weights: ' + ('identical in both environments'
                               if diff == 0 else
                               f'differ by up to {diff:.3g}'))


def default_packages(base: Environment) -> List[str]:
    """The other NumPy major and its OpenCV (:data:`OTHER_STACK`)."""
    version = base.run('numpy', ['-c', 'import numpy; '
                                 'print(numpy.__version__)']).strip()
    major = int(version.split('.')[0])
    if major not in OTHER_STACK:
        raise CheckFailed(f'no default overlay for NumPy {version}; name '
                          'one with --packages')
    return list(OTHER_STACK[major])


def run_tools(envs: List[Environment], work_dir: str) -> Dict:
    """Data, training, estimates and resuming in each environment;
    returns the estimates by (environment, checkpoint owner)."""
    base, other = envs
    for env in envs:
        env.run('data', ['tools/make_synthetic_data.py', env.path('data'),
                         *DATA_ARGS])
    config = osp.join(work_dir, 'value.py')
    write_config(base.path('data'), config)
    images = osp.join(base.path('data'), 'cityscapes', 'leftImg8bit',
                      'train')
    ckpts = {}
    for env in envs:
        ckpts[env.name] = train(env, config)
        say(f'{env.name}: tools/train.py, 2 iterations; the checkpoint '
            f'pickles numpy under {env.versions["multiarray"]}')
    estimates = {}
    for env in envs:
        for owner, ckpt in ckpts.items():
            estimates[env.name, owner] = estimate(env, config, ckpt, owner,
                                                  images)
        say(f'{env.name}: tools/estimate_ece.py with the base and the '
            'overlay checkpoints')
    for env, owner in ((base, other.name), (other, base.name)):
        resume(env, config, ckpts[owner], owner)
        say(f'{env.name}: tools/train.py --resume from {owner}\'s '
            'checkpoint')
    return estimates


def check(work_dir: str, cache: str,
          packages: Optional[Sequence[str]]) -> None:
    """Builds the overlay, runs the tools in both environments and
    compares them; raises :class:`CheckFailed` or
    :class:`IndexUnreachable`."""
    base = Environment('base', work_dir)
    packages = list(packages or default_packages(base))
    overlay = osp.join(work_dir, 'site-packages')
    source = install_overlay(packages, cache, overlay)
    say(f'overlay: {" ".join(packages)} in {overlay}, from {source}')
    other = Environment('overlay', work_dir, prepend=[overlay])
    check_versions(base)
    check_versions(other, overlay, packages)
    envs = [base, other]
    for env in envs:
        say(f'{env.name}: {env.describe()}')
    majors = {env.versions['numpy'].split('.')[0] for env in envs}
    if len(majors) == 1:
        raise CheckFailed(f'both environments run NumPy {majors.pop()}: '
                          'checkpoints would not cross NumPy majors; choose '
                          'the other one with --packages')
    compare(envs, run_tools(envs, work_dir))


def main():
    args = parse_args()
    sys.path.insert(0, ROOT)  # this checkout's package, as in the children
    work_dir = osp.abspath(args.work_dir or tempfile.mkdtemp(
        prefix='check_stack_'))
    os.makedirs(work_dir, exist_ok=True)
    try:
        check(work_dir, osp.abspath(args.cache), args.packages)
    except IndexUnreachable as e:
        print(f'[stack] SKIPPED: {e}', file=sys.stderr, flush=True)
        raise SystemExit(EXIT_OFFLINE)
    except CheckFailed as e:
        print(f'[stack] FAILED: {e}\n[stack] kept {work_dir}',
              file=sys.stderr, flush=True)
        raise SystemExit(1)
    say('ok: the checkout runs in both environments and each loads the '
        "other's checkpoints")
    if args.work_dir is None:
        shutil.rmtree(work_dir)


if __name__ == '__main__':
    main()
