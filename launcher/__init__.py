"""What only ``make run`` uses: the one-machine stack, the local autoscaler and the worker program layout."""
