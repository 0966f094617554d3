"""The `convdet` command line: one entry point whose subcommands drive `export` and `runtime`."""
