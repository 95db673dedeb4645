// The confirmation asked before anything that cannot be taken back (cancel, unpublish,
// delete): a modal <dialog>; the answer is a promise.

const dialog = document.getElementById("confirm");
const text = document.getElementById("confirm-text");
const ok = document.getElementById("confirm-ok");

/** Ask `question`; answers true when the person confirms with `action` (the button). */
export function confirmAction(question, action) {
  text.textContent = question;
  ok.textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}
