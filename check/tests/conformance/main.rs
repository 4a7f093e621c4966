//! The conformance kit's corpora on loopspec, without Python: the
//! single-thread traces CPython recorded (`corpus`), the threaded and
//! fresh-process scenarios judged as the kit judges them (`threaded`), and
//! the coverage of the cross-thread rule families by scenarios
//! (`coverage`).

mod corpus;
mod coverage;
mod threaded;
