"""One module per ``nudge`` sub-command group; ``nudge.cli`` mounts them."""
