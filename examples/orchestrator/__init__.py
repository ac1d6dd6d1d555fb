"""An instrumented LangGraph orchestrator on fake models: see README.md here, or `wdp demo`."""
