## man: rules for this part of the tree (see Makefile.am).

dist_man_MANS = \
	man/cymemtrack.3 \
	man/cymemtrack-report.5 \
	man/cymem-report.1 \
	man/cymemtrack.1 \
	man/cymemtrack.7
