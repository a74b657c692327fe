//! The conformance suite on every backend. Test names carry the backend:
//! `sqlite::<case>`, `postgres::<case>`, `mariadb::<case>`, `mongo::<case>`.

mod sqlite {
    crm_tests::conformance_suite!(crm_tests::backends::sqlite);
}

mod postgres {
    crm_tests::conformance_suite!(crm_tests::backends::postgres);
}

mod mongo {
    crm_tests::conformance_suite!(crm_tests::backends::mongo);
}

mod mariadb {
    crm_tests::conformance_suite!(crm_tests::backends::mariadb);
}
