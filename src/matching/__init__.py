"""matching: allocate French social housing units to scored demands under the legal quotas.

The public API is re-exported here; importing the package has no side effect.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
