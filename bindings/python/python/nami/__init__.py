"""Nami (mada) payment terminals from Python: the Rust ``nami-sdk`` through uniffi.

Everything is generated from the Rust exports into the ``nami.nami`` subpackage (``nami.py``,
with type annotations, and the native library) and re-exported here: ``Terminal``,
``Middleware``, ``TerminalConfig``, ``SerialSettings``, ``TxnResult``, ``NamiError``,
``EventListener``, ``LogSink``, ``set_log_sink``, ``list_serial_ports``, ... See
``bindings/python/README.md``.
"""

from .nami.nami import *  # noqa: F401,F403
from .nami.nami import __all__  # noqa: F401

# Show the public names as `nami.Terminal`, `nami.NamiError.Busy`, not `nami.nami.nami.…`.
def _rehome(value):
    if isinstance(value, type) and value.__module__.startswith(__name__ + ".nami"):
        value.__module__ = __name__
        for name, member in vars(value).items():
            if not name.startswith("_"):
                _rehome(member)


for _name in __all__:
    _rehome(globals()[_name])
del _name, _rehome
