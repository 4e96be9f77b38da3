export { resolveEffectiveEnvironments } from "./effective-environments";
