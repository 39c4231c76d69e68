"""Rules that more than one artifact must agree on, declared once.

The trigger function, the deploy function and the pipeline builder each import what they need from
here, and the builds copy this package into every artifact that uses it (see the functions'
Makefiles). Nothing in it may import anything outside the standard library: it runs in both Lambda
functions, where cold start matters.
"""
