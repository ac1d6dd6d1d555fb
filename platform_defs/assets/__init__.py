"""The platform's assets: event partitions, daily aggregates, retention."""
