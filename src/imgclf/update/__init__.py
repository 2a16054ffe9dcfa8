"""Updating a run: its parent, the weights it keeps, the rehearsal images, and what the update did."""
