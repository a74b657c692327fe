// Dragging by keyboard as well as by pointer: on a drag handle, Space or Enter picks the
// item up, the arrow keys carry it to the neighbouring drop target in that direction (the
// next stage's column, the card beside or below), Space or Enter drops it and Escape puts
// it back. dnd-kit's own keyboard step is 25 px a press; a board wants a target a press.
import {
  KeyboardSensor,
  PointerSensor,
  useSensor,
  useSensors,
  type Announcements,
  type KeyboardCoordinateGetter,
  type ScreenReaderInstructions,
  type UniqueIdentifier,
} from "@dnd-kit/core";
import { useMemo } from "react";
import { useI18n } from "./i18n";

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

const DIRECTIONS: Record<string, [number, number]> = {
  ArrowRight: [1, 0],
  ArrowLeft: [-1, 0],
  ArrowDown: [0, 1],
  ArrowUp: [0, -1],
};

/**
 * The nearest of `targets` from `from` in the arrow key's direction: its centre lies past
 * `from`'s edge on that side; those more in line come first.
 */
export function neighbour(code: string, from: Box, targets: Box[]): Box | undefined {
  const dir = DIRECTIONS[code];
  if (!dir) return undefined;
  const [dx, dy] = dir;
  const cx = from.left + from.width / 2;
  const cy = from.top + from.height / 2;
  let best: Box | undefined;
  let bestScore = Infinity;
  for (const t of targets) {
    const tx = t.left + t.width / 2 - cx;
    const ty = t.top + t.height / 2 - cy;
    const along = tx * dx + ty * dy;
    if (along <= (dx !== 0 ? from.width : from.height) / 2) continue;
    const score = along + 2 * Math.abs(tx * dy + ty * dx);
    if (score < bestScore) {
      bestScore = score;
      best = t;
    }
  }
  return best;
}

/** Where `from` goes to sit inside `to` with the least move (centred when it is larger). */
export function placeIn(from: Box, to: Box): { x: number; y: number } {
  const fit = (pos: number, size: number, start: number, room: number) =>
    size >= room ? start + (room - size) / 2 : Math.min(Math.max(pos, start), start + room - size);
  return { x: fit(from.left, from.width, to.left, to.width), y: fit(from.top, from.height, to.top, to.height) };
}

export const jumpToNeighbour: KeyboardCoordinateGetter = (event, { active, context }) => {
  const from = context.collisionRect;
  if (!from || !DIRECTIONS[event.code]) return undefined;
  event.preventDefault();
  const targets: Box[] = [];
  for (const c of context.droppableContainers.getEnabled()) {
    // (A dashboard card is a drop target of its own.)
    if (c.id === active) continue;
    const rect = context.droppableRects.get(c.id);
    if (rect) targets.push(rect);
  }
  const to = neighbour(event.code, from, targets);
  return to ? placeIn(from, to) : undefined;
};

/** A pointer drag that starts after `distance` pixels, and the keyboard's. */
export function useDragSensors(distance: number) {
  return useSensors(
    useSensor(PointerSensor, { activationConstraint: { distance } }),
    useSensor(KeyboardSensor, { coordinateGetter: jumpToNeighbour }),
  );
}

/**
 * What a screen reader hears while dragging, in the user's language: how to drag, and
 * each pick-up, move and drop by name (`nameOf`: an item's or a target's name by id).
 */
export function useDragWords(nameOf: (id: UniqueIdentifier) => string): {
  screenReaderInstructions: ScreenReaderInstructions;
  announcements: Announcements;
} {
  const { t } = useI18n();
  return useMemo(
    () => ({
      screenReaderInstructions: { draggable: t("dragHelp") },
      announcements: {
        onDragStart: ({ active }) => t("dragPicked", { name: nameOf(active.id) }),
        onDragOver: ({ active, over }) =>
          over ? t("dragOver", { name: nameOf(active.id), target: nameOf(over.id) }) : t("dragNowhere", { name: nameOf(active.id) }),
        onDragEnd: ({ active, over }) =>
          over ? t("dragDropped", { name: nameOf(active.id), target: nameOf(over.id) }) : t("dragBack", { name: nameOf(active.id) }),
        onDragCancel: ({ active }) => t("dragBack", { name: nameOf(active.id) }),
      },
    }),
    [t, nameOf],
  );
}
