"""A Kubernetes API emulation for tests that drive the unmodified Prefect Kubernetes worker.

See `emulator.KubeEmulator` (the Python control API) and `worker.kubernetes_worker`
(a real `prefect worker start --type kubernetes` pointed at it); tests/README.md says what
is served and what is faked.
"""

from .emulator import KubeEmulator, Node
from .worker import kubernetes_worker

__all__ = ["KubeEmulator", "Node", "kubernetes_worker"]
