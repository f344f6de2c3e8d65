from .backbones import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .domain_adaptation import *  # noqa: F401,F403
