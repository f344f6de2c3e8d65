"""The state of every random generator a training process draws from, as
plain data.

:func:`capture` gives the states of torch's CPU (and CUDA) generators,
numpy's and Python's global generators and any named ``torch.Generator``
as tensors, ints and floats, so a checkpoint holding them still loads with
``torch.load(weights_only=True)`` (never a pickled numpy object);
:func:`restore` puts them back and says which named generators it could not
find. *When* to capture and restore is
:class:`~prunedet.engine.hooks.RandomStateHook`'s business.
"""
import random
from typing import Dict, List, Mapping

import numpy as np
import torch


def capture(generators: Mapping[str, torch.Generator] = {}) -> dict:
    """The states of the global generators and of ``generators``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(
            kind=str(kind),
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached)),
        python=dict(
            version=int(version),
            internal=torch.tensor(internal, dtype=torch.int64),
            gauss_next=gauss_next),
        generators={
            name: g.get_state()
            for name, g in generators.items()
        })
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore(state: dict,
            generators: Mapping[str, torch.Generator] = {}) -> List[str]:
    """Set every generator to ``state`` (from :func:`capture`). Returns the
    names in ``generators`` the state has nothing for."""
    torch.set_rng_state(state['torch'])
    cuda = state.get('cuda')  # only onto as many devices as it had
    if cuda is not None and torch.cuda.is_available() and \
            len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    numpy = state['numpy']
    np.random.set_state(
        (numpy['kind'], numpy['keys'].numpy().astype(np.uint32),
         numpy['pos'], numpy['has_gauss'], numpy['cached_gaussian']))
    python = state['python']
    random.setstate((python['version'], tuple(python['internal'].tolist()),
                     python['gauss_next']))
    saved: Dict[str, torch.Tensor] = state.get('generators', {})
    for name, generator in generators.items():
        if name in saved:
            generator.set_state(saved[name])
    return sorted(set(generators) - set(saved))


def check(state, where: str,
          generators: Mapping[str, torch.Generator] = {}) -> None:
    """Raise ``ValueError`` naming ``where`` if ``state`` cannot be
    restored (it comes from a file): restore it, then undo that."""
    now = capture(generators)
    try:
        restore(state, generators)
    except Exception as error:  # any malformed field: one clear message
        raise ValueError(f'{where} is not a random state prunedet saved: '
                         f'{type(error).__name__}: {error}') from None
    finally:
        restore(now, generators)
