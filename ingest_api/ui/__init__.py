"""The web UI (``/ui``): runs, one run's waterfall, usage; see docs/ui.md."""

from ingest_api.ui.pages import UI_ROUTER
from ingest_api.ui.templating import TEMPLATE_CONFIG

__all__ = ["TEMPLATE_CONFIG", "UI_ROUTER"]
