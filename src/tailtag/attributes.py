"""The two kinds of attribute: several labels per item, or exactly one."""

MULTI_LABEL = "multi_label"
SINGLE_LABEL = "single_label"
KINDS = (MULTI_LABEL, SINGLE_LABEL)
