"""LangGraph instrumentation: one line, and every node, state change and run is an event.

    from sdk.langgraph import instrument

    graph = instrument(builder.compile(), workflow_name="triage",
                       agent_roles={"plan": "planner", "review": "reviewer"})
    graph.invoke({"item_id": "ITEM-1", "status": "new", ...})

Needs the ``langgraph`` extra. Events go through the SDK's telemetry client (the
default one from the settings unless ``client=`` is given); see README, "Instrument
your graph".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sdk.langgraph.handler import WdpCallbackHandler
from sdk.langgraph.prices import DEFAULT_PRICES, ModelPrice, PriceTable
from sdk.telemetry.client import TelemetryClient

__all__ = [
    "DEFAULT_PRICES",
    "ModelPrice",
    "PriceTable",
    "WdpCallbackHandler",
    "instrument",
]

G = TypeVar("G")


def instrument(
    graph: G,
    *,
    workflow_name: str,
    agent_roles: Mapping[str, str] | None = None,
    state_key: str = "status",
    item_id_key: str = "item_id",
    prices: Mapping[str, ModelPrice] | None = None,
    client: TelemetryClient | None = None,
) -> G:
    """The compiled ``graph`` with a :class:`WdpCallbackHandler` attached (``with_config``).

    ``agent_roles`` maps node names (``parent/child`` for a subgraph's nodes) to the
    agent role recorded on their steps; without an entry, a node's role comes from the
    ``agent_role`` key of the run's config metadata. ``state_key`` and ``item_id_key``
    name the state fields holding the work item's status and id. ``prices`` maps exact
    model names to prices that win over the bundled genai-prices data
    (:mod:`sdk.langgraph.prices`; :data:`DEFAULT_PRICES` is a read-only view of that
    data). The original graph is left as it was.
    """
    if not isinstance(workflow_name, str) or not 1 <= len(workflow_name.strip()) <= 200:
        raise ValueError("workflow_name must be a non-empty string of at most 200 characters")
    for name, value in (("state_key", state_key), ("item_id_key", item_id_key)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    if hasattr(graph, "compile") and not hasattr(graph, "invoke"):
        raise TypeError("instrument() takes a compiled graph: pass builder.compile()")
    with_config: Any = getattr(graph, "with_config", None)
    if with_config is None:
        raise TypeError(
            f"instrument() takes a compiled LangGraph graph, not {type(graph).__name__}"
        )
    handler = WdpCallbackHandler(
        workflow_name=workflow_name.strip(),
        agent_roles=agent_roles,
        state_key=state_key,
        item_id_key=item_id_key,
        prices=prices,
        client=client,
    )
    instrumented: G = with_config(callbacks=[handler])
    return instrumented
