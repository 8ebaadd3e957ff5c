"""Phased libcst codemods that replace hardcoded trading values with fail-closed policy look-ups.

Builds on `audit` (its findings select what each phase touches) and `engine.domain` (the one list
of policy value names, the safety limits and the skip reasons). Never imports `qctl`.
"""
