import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { ApiError } from "./api";
import { I18nProvider } from "./i18n";
import { Field, FormError } from "./ui";

afterEach(cleanup);

describe("Field", () => {
  it("labels its input and ties its error to it", () => {
    render(<Field label="Email" name="email" error="not an email" defaultValue="x" />);
    const input = screen.getByLabelText("Email");
    expect(input.getAttribute("aria-invalid")).toBe("true");
    const described = input.getAttribute("aria-describedby");
    expect(described && document.getElementById(described)?.textContent).toBe("not an email");
  });

  it("says nothing when there is no error", () => {
    render(<Field label="Name" name="name" defaultValue="Ann" />);
    const input = screen.getByLabelText("Name");
    expect(input.getAttribute("aria-invalid")).toBeNull();
    expect(input.getAttribute("aria-describedby")).toBeNull();
  });
});

describe("FormError", () => {
  const error = new ApiError(422, "validation_failed", "validation failed", [
    { field: "email", code: "invalid_format", message: "not an email" },
    { field: "colour", code: "unknown_field", message: "unknown field" },
  ]);

  it("shows only the errors no field of the form shows", () => {
    render(
      <I18nProvider>
        <FormError error={error} fields={["email"]} />
      </I18nProvider>,
    );
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("colour: unknown field");
    expect(alert.textContent).not.toContain("not an email");
  });

  it("is silent when every error is shown at its field", () => {
    render(
      <I18nProvider>
        <FormError error={error} fields={["email", "colour"]} />
      </I18nProvider>,
    );
    expect(screen.queryByRole("alert")).toBeNull();
  });
});
