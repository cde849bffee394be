"""``make bench``: figures for the closing notes, each next to a baseline measured in the same run."""
