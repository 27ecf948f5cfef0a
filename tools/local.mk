## tools: rules for this part of the tree (see Makefile.am).
