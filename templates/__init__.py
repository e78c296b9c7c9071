"""iomfeed's templates (Jinja2): installed as the package ``iomfeed.templates``.

This folder is the single copy: the repository keeps it at the top level and the wheel ships
it inside the package. Nothing to import here.
"""
