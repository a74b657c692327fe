//! The conformance suite on every SQL backend. Test names carry the backend:
//! `sqlite::<case>`, `postgres::<case>`.

mod sqlite {
    crm_tests::conformance_suite!(crm_tests::backends::sqlite);
}

mod postgres {
    crm_tests::conformance_suite!(crm_tests::backends::postgres);
}
