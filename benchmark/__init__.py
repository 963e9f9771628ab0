"""The scoring harness of memalpha-bench and the `memalpha` command line."""
