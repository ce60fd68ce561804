"""One parser per part of the file, each `parse(top, ...)` reading its own table(s).

Invariant: a parser checks only its own table (and the names it is handed, such as
the disks a [[target]] may use); checks that relate tables to each other once all
are read live in `bootsrv.config.crosschecks`. `bootsrv.config.loader` calls them in
a fixed order, which decides which error a file with several mistakes reports.
"""
