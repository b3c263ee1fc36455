"""Former name of :mod:`fxforge.registry` (it collided with the repository's ``plugins/``
folder); kept so that code written against it keeps working."""
from .registry import *  # noqa: F401,F403
from .registry import KINDS, Registry, get_registry, reset_registry  # noqa: F401
