export { computeAvailability, type Availability, type TimedTransition } from "./availability";
