"""The networks: architecture specs and families (timm-built VGG/ResNet), Net2Net transforms,
growth ops, pruning, and the cost of a forward pass (MACs).

Importing this package registers the shipped families (:mod:`growsearch.model.families`), as
timm's ``models/__init__`` registers its models; everything is found by name through
:mod:`growsearch.model.arch`.
"""

from growsearch.model import families as _families  # noqa: F401 - registers the shipped VGG and ResNet families
