"""Retention: lifecycle policies per store and category, scheduled destruction runs and their certificates."""
