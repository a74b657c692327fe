import { describe, expect, it } from "vitest";
import { neighbour, placeIn, type Box } from "./dnd";

const box = (left: number, top: number, width: number, height: number): Box => ({ left, top, width, height });

describe("dragging by keyboard", () => {
  // A board of three columns, a card inside the first.
  const [first, second, third] = [box(0, 0, 200, 800), box(210, 0, 200, 800), box(420, 0, 200, 800)];
  const columns = [first, second, third];
  const card = box(8, 100, 184, 60);

  it("goes to the next column either way, and nowhere past the ends", () => {
    expect(neighbour("ArrowRight", card, columns)).toBe(second);
    expect(neighbour("ArrowLeft", card, columns)).toBeUndefined();
    const inSecond = box(218, 100, 184, 60);
    expect(neighbour("ArrowLeft", inSecond, columns)).toBe(first);
    expect(neighbour("ArrowRight", inSecond, columns)).toBe(third);
    expect(neighbour("KeyA", card, columns)).toBeUndefined();
  });

  it("prefers the card in line on a grid", () => {
    // Two rows of two cards; from the top left one.
    const [topLeft, topRight, bottomLeft, bottomRight] = [box(0, 0, 300, 200), box(310, 0, 300, 200), box(0, 210, 300, 200), box(310, 210, 300, 200)];
    expect(neighbour("ArrowRight", topLeft, [topRight, bottomLeft, bottomRight])).toBe(topRight);
    expect(neighbour("ArrowDown", topLeft, [topRight, bottomLeft, bottomRight])).toBe(bottomLeft);
    expect(neighbour("ArrowUp", bottomRight, [topLeft, topRight, bottomLeft])).toBe(topRight);
  });

  it("moves the item as little as it can to sit inside the target", () => {
    expect(placeIn(card, second)).toEqual({ x: 210, y: 100 });
    expect(placeIn(box(0, 900, 184, 60), second)).toEqual({ x: 210, y: 740 });
    // Larger than its target: centred on it.
    expect(placeIn(box(0, 0, 400, 100), box(500, 0, 200, 300))).toEqual({ x: 400, y: 0 });
  });
});
