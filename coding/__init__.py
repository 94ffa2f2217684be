"""Coding mail: the topic and stance model that learns from staff coding."""
