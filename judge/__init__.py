"""The judge engine: rubrics, judge-model providers, strict verdict parsing and an async runner.

Standalone: this package never imports `review_app`; the app drives it through explicit arguments.
"""
