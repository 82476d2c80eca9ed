"""Past one machine: data-parallel training over MPI, batch inference over Dask.

========================  ==========================================================================
:func:`train`             synchronous data-parallel training, run by every process of
                          ``mpiexec -n K python train.py``: rank 0's state broadcast at the start,
                          each process a block of the batch, one ``Allreduce`` of all gradients per
                          step, the update of the whole batch exactly
:func:`predict`           a model's outputs for a Dask array ``(T, N, I)`` chunked along ``N``,
                          computed block by block on the workers
:func:`block_bounds`      which rows of a global batch each process trains on
:exc:`CollectiveError`    the error every process raises together when they disagree
========================  ==========================================================================

Needs the extra ``distributed`` (``pip install '.[distributed]' (from the checkout)``: mpi4py, MPICH from
wheels and ``dask[distributed]``); importing this module does not, each function imports
what it uses when called.
"""

from ._mpi import CollectiveError
from ._predict import predict
from ._train import block_bounds, train

__all__ = ["CollectiveError", "block_bounds", "predict", "train"]
