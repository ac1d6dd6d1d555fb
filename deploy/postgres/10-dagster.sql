-- Dagster's instance storage lives beside wdp, in a database of its own.
CREATE DATABASE dagster;
