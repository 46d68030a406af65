"""Adapters that store consentry's data: tables, repositories, unit of work and key handling."""
