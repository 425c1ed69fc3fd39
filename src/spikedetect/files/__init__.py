"""Reading report files and reporting on it, shared by both shells: batches of lines from files,
gzip or stdin (:mod:`.sources`), bad input and exit codes (:mod:`.faults`), progress (:mod:`.progress`)."""
