"""Core contracts: labels, feature schema, paths, hashing, time, errors, model bundles.

``core`` imports nothing else of taskclf; every other package builds on it.
"""
